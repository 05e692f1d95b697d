"""Making int8 entries: calibration of each entry's activation ranges and a
pool file holding both precisions (``adaptive-rt quantize``). The scheme
itself is :mod:`adaptive_rt.model.quant`, its exact NumPy reference
:mod:`adaptive_rt.model.reference_int8`."""
