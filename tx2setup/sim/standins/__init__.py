"""STAND-INS for NVIDIA's L4T tools, installed on emulated boards only.

nvpmodel, jetson_clocks and tegrastats cannot exist without Jetson hardware. These keep
their command lines, output formats and exit codes (design.md section 4) and read the
board's /etc/nvpmodel.conf and /etc/tx2setup-sim/board.json. Each file is a standalone
script (standard library only): `tx2setup sim` copies it onto the board with a shebang.
"""
