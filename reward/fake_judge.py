"""`reward.fake_judge`, kept for the configs and scripts that name it:
the HTTP fake judge lives in `reward.judge.fake.http`.

This module *is* that module (one object in sys.modules), so settings and patches apply to both names.
"""

import sys

import reward.judge.fake.http as _module

sys.modules[__name__] = _module
