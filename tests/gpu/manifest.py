"""manifest.py — reads `kiln emit --emit=opt-graph` of a module and writes,
for every GPU-placed kernel node, its kernel symbol, operand names, shapes
and dtypes, as JSON for run.sh's checker (which runs where kiln does not)."""
import json
import re
import sys

graph = open(sys.argv[1]).read()
module = re.search(r"^module (\S+)", graph, re.M).group(1)
types = {}
kernels = []
for line in graph.splitlines():
    m = re.match(r"\s+(\S+) = (\w+)(?:<[^>]*>)?\(([^)]*)\)(?: \{.*\})? : (\w+)\[([\d,]*)\](.*)$", line)
    if not m:
        continue
    name, op, args, dt, dims, rest = m.groups()
    types[name] = (dt, [int(s) for s in dims.split(",") if s])
    if "@gpu:" in rest and op != "device_copy":
        # operands copied to the GPU by the placement pass are the fed placeholders
        ins = [re.sub(r"/to_gpu\d+$", "", s.strip()) for s in args.split(",") if s.strip()]
        kernels.append({"name": name, "symbol": module + "_" + re.sub(r"\W", "_", name), "op": op,
                        "inputs": ins, "dtype": dt, "shape": types[name][1]})
for k in kernels:
    k["input_types"] = [types[i] for i in k["inputs"]]
json.dump({"module": module, "kernels": kernels}, open(sys.argv[2], "w"), indent=1)
print("%d kernels" % len(kernels))
