"""`reward.ray`, kept for the configs and scripts that name it:
the Ray Serve application (`serve run reward.ray:app`) lives in `reward.service.ray`.

This module *is* that module (one object in sys.modules), so settings and patches apply to both names.
"""

import sys

import reward.service.ray as _module

sys.modules[__name__] = _module
