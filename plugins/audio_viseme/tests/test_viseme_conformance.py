from being_kernel.testing import conformance_suite

# Streaming runs the same fixed-block computation as batch, so they are equal exactly (atol 1e-5).
TestViseme = conformance_suite("audio", "viseme")
