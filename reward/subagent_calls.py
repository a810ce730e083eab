"""`reward.subagent_calls`, kept for the scripts that name it (`python -m reward.subagent_calls ...`): the
cutter of Figure 7 inputs lives in `reward.native.subagent_calls`.

Imported, this module *is* that module (one object in sys.modules); run with -m, it runs its `main`.
"""

import sys

import reward.native.subagent_calls as _module

if __name__ == "__main__":
    sys.exit(_module.main())
sys.modules[__name__] = _module
