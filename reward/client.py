"""`reward.client`, kept for the configs and scripts that name it:
the trainer-side client lives in `reward.adapters.client`.

This module *is* that module (one object in sys.modules), so settings and patches apply to both names.
"""

import sys

import reward.adapters.client as _module

sys.modules[__name__] = _module
