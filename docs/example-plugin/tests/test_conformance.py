from being_kernel.testing import conformance_suite

TestNod = conformance_suite("audio", "nod")
