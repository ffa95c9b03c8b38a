# STAND-IN skeleton
