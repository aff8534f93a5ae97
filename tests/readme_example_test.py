"""The README's C++ usage example must be examples/quickstart.cpp, verbatim."""
import re
import sys

readme, example = (open(p).read() for p in sys.argv[1:3])
blocks = re.findall(r"```cpp\n(.*?)```", readme, re.S)
if example not in blocks:
    sys.exit("README.md does not quote examples/quickstart.cpp verbatim in a ```cpp block")
print("README quotes examples/quickstart.cpp")
