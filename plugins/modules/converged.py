#!/usr/bin/python
# tx2setup.jetson.converged, the board side: is a role's part of the board as the role's last
# full run left it? The controller side (plugins/action/converged.py) adds the digest of the
# role's inputs. Runs on every board Python from 3.6 (JetPack 4) on: no f-strings' newer
# forms, no walrus, no dataclasses.
# Why (issue 14, docs/benchmarks.md "Controller CPU"): on a provisioned board every task still
# costs the controller a worker fork, templating and an SSH round trip (about 0.06 cpu-s an
# executed task, 0.03 a skipped one); one probe that answers "nothing to do" lets a role skip
# its tasks as one skipped include.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: converged
short_description: Tell whether a role's share of a board is as the role's last full run left it
description:
  - C(state=check) digests the board state the role manages (files, packages, command outputs)
    and compares it, and the inputs digest the action plugin computed on the controller, with the
    record the role's last complete run wrote.
  - C(state=record) writes that record; C(state=forget) removes it. Both are bookkeeping and
    report no change (the board's managed state is not touched).
  - Files of up to 1 MiB are digested by content, larger ones by size (a swap file); directories
    by mode and owner; links by target. A path ending in C(/**) digests every file below it.
version_added: 0.2.0
options:
  name: {description: The role's name (the record is /var/lib/tx2setup/converged/NAME.json)., type: str, required: true}
  state: {description: check, record or forget., type: str, default: check, choices: [check, record, forget]}
  inputs: {description: The inputs digest (set by the action plugin)., type: str, default: ""}
  paths: {description: Paths the role manages., type: list, elements: str, default: []}
  packages: {description: Debian packages the role installs., type: list, elements: str, default: []}
  commands:
    description: Read-only commands (argv lists) whose output is state the role sets.
    type: list
    elements: raw
    default: []
  record_dir: {description: Where the records live., type: str, default: /var/lib/tx2setup/converged}
author: [tx2setup]
"""

EXAMPLES = r"""
- name: Ask the board whether this role has anything to do
  tx2setup.jetson.converged:
    paths: [/etc/timezone]
    packages: [tzdata]
    commands: [[hostname]]
  register: jetson_base_converged
"""

RETURN = r"""
converged: {description: Whether the record matches (check only)., returned: always, type: bool}
state_digest: {description: sha256 of the managed state., returned: always, type: str}
reason: {description: Why not converged, in words., returned: always, type: str}
"""

import hashlib
import json
import os
import stat

from ansible.module_utils.basic import AnsibleModule

BIG = 1 << 20


def _file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def _one(path):
    try:
        st = os.lstat(path)
    except OSError:
        return [path, "absent"]
    head = [path, oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid]
    if stat.S_ISLNK(st.st_mode):
        return [*head, "link", os.readlink(path)]
    if stat.S_ISDIR(st.st_mode):
        return [*head, "dir"]
    if st.st_size > BIG:
        return [*head, "big", st.st_size]
    try:
        return [*head, "file", _file_digest(path)]
    except OSError as exc:  # unreadable: a state of its own, digested as such
        return [*head, "unreadable", str(exc)]


def _tree(top):
    out = [_one(top)]
    for root, dirs, files in os.walk(top):
        # bytecode Python writes when the tree is run is not state the role set
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        out.extend(_one(os.path.join(root, name)) for name in sorted(dirs + files))
    return out


def state_of(module, paths, packages, commands):
    items = []
    for path in paths:
        # ~user/...: that user's home, as the file modules expand their `path` (type path)
        path = os.path.expanduser(path)
        items.extend(_tree(path[:-3]) if path.endswith("/**") else [_one(path)])
    if packages:
        rc, out, _ = module.run_command(
            ["dpkg-query", "-W", "-f=${Package} ${Version} ${db:Status-Abbrev}\\n", "--", *sorted(packages)],
            expand_user_and_vars=False,
        )
        items.append(["packages", rc, out])
    for argv in commands:
        argv = [str(a) for a in argv]
        try:
            rc, out, _ = module.run_command(argv, handle_exceptions=False, expand_user_and_vars=False)
        except OSError as exc:  # a command this board does not have (nvpmodel on a non-Jetson)
            rc, out = -1, str(exc)
        items.append(["command", argv, rc, out])
    return hashlib.sha256(json.dumps(items, sort_keys=True).encode("utf-8")).hexdigest()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="check", choices=["check", "record", "forget"]),
            inputs=dict(type="str", default=""),
            paths=dict(type="list", elements="str", default=[]),
            packages=dict(type="list", elements="str", default=[]),
            commands=dict(type="list", elements="raw", default=[]),
            record_dir=dict(type="str", default="/var/lib/tx2setup/converged"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    record = os.path.join(p["record_dir"], p["name"] + ".json")
    if p["state"] == "forget":
        if not module.check_mode and os.path.exists(record):
            os.unlink(record)
        module.exit_json(changed=False, converged=False, state_digest="", reason="forgotten")
    digest = state_of(module, p["paths"], p["packages"], p["commands"])
    if p["state"] == "record":
        if not module.check_mode:
            if not os.path.isdir(p["record_dir"]):
                os.makedirs(p["record_dir"], 0o755)
            tmp = record + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"inputs": p["inputs"], "state": digest}, f)
            os.rename(tmp, record)  # atomic: a cut run leaves the old record or none
        module.exit_json(changed=False, converged=True, state_digest=digest, reason="recorded")
    try:
        with open(record) as f:
            last = json.load(f)
    except (OSError, ValueError):
        module.exit_json(changed=False, converged=False, state_digest=digest, reason="no record of a complete run")
    if last.get("inputs") != p["inputs"]:
        reason = "the role's inputs changed (its files, variables or the plan)"
    elif last.get("state") != digest:
        reason = "the board's state changed since the last complete run"
    else:
        reason = ""
    module.exit_json(
        changed=False, converged=not reason, state_digest=digest, reason=reason or "as the last run left it"
    )


if __name__ == "__main__":
    main()
