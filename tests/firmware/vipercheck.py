# Build check: viper code frozen for the host's native architecture runs.
module("vipersum.py", base_path="vipercheck")
