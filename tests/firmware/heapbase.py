# Test firmware: the simulated ESP32 booted without the epx core, an idle asyncio loop its
# only work: the baseline bench/bench_core_heap.py measures the core's heap against.
module("main.py", base_path="heapbase")
