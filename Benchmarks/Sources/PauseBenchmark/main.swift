print("PauseBenchmark: not written yet")
