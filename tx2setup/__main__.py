from tx2setup.cli import entry

entry()
