print("PlanBenchmark: not written yet")
