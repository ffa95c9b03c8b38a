# Documentation of the action plugin plugins/action/plan.py (it runs on the controller only;
# this file holds no code, as ansible-core's own set_fact/assert module files). Only
# assignments, so ansible-test sanity asks for no Python 2 import boilerplate.

DOCUMENTATION = r"""
module: plan
short_description: Resolve a Jetson board's plan (versions, sources, URLs) into plan_* variables
description:
  - Runs on the controller and connects to nothing. Reads the board's inventory variables
    (jetson_module, jetpack or l4t, power_mode, components, overrides) and resolves them with
    the tx2setup package, exactly as C(tx2setup inventory check) does; a bad board fails with
    the same one-line message.
  - Sets C(tx2setup_plan) (the plan as C(tx2setup inventory check --json) prints it) and the
    flat C(plan_*) variables the roles read, as host facts.
  - Artifacts come from the plan's URLs, or from C(tx2setup_cache_url) when set, and carry the
    sha256 pinned in the lock file (C(tx2setup_lock_file), default C(tx2setup.lock) beside the
    inventory), else the matrix's.
version_added: 0.1.0
options: {}
requirements:
  - the tx2setup Python package in the controller's (or execution environment's) Python
author:
  - tx2setup
"""

EXAMPLES = r"""
- name: Resolve the board's plan
  tx2setup.jetson.plan:
  any_errors_fatal: true
"""

RETURN = r"""
ansible_facts:
  description: tx2setup_plan and the plan_* variables.
  returned: success
  type: dict
"""
