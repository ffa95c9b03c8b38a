"""testinfra checks that `tx2setup verify` runs against every board.

They are plain pytest files: run them standalone with
    pytest --hosts=ansible://all --ansible-inventory=lab.ini tx2setup/checks
(or with --hosts=ssh://NAME --ssh-config=FILE --tx2setup-inventory=lab.ini).
"""
