#!/bin/sh
# Vault password client for the scenario: the sim fleet's vault password once create.yml has
# made the fleet, nothing before (create/destroy need none, and a missing file is an error).
cat "${TX2SETUP_SIM_DIR:?}/keys/vault-password" 2>/dev/null || echo "no-fleet-yet"
