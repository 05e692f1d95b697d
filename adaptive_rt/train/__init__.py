"""Offline training (torch): the elastic supernet, subnet samplers, the
training loop and pool building. Only this package imports torch; install
the extra: from the adaptive_rt checkout, pip install -c constraints.txt '.[train]'."""
