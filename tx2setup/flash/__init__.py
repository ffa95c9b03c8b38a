"""Host-side flashing: boards in USB recovery mode get the planned L4T.

- `detect`: boards in recovery mode, read from sysfs (vendor 0955, product IDs from the matrix).
- `match`: detected boards <-> inventory boards (USB port path, serial, or asking).
- `bsp`: the Linux_for_Tegra folder: --bsp DIR or a per-L4T cache built from NVIDIA's
  tarballs, fetched and pinned through the artifact cache (tx2setup/cache.py).
- `bsp_data`: tx2setup/data/l4t_bsp.yaml: tarball URLs per L4T, board configs per product ID.
- `credentials`: the default user created in the rootfs before flashing.
- `command_lines`: the flash.sh / l4t_initrd_flash.sh argument vectors.
- `runner`: runs them with a log per board, a timeout, and progress events.
- `network`: waits for flashed boards to come up on the network.
- `session`: the refusals (all checked before anything starts) and the whole run.

Nothing here prints: progress goes to a callback (`progress.py` renders it with rich).
"""
