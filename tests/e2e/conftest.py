"""The end-to-end suite: its modules share helpers (test_wheels), importable under --import-mode=importlib."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # test_devo_sdk_floor imports the wheel helpers of test_wheels
    sys.path.insert(0, HERE)
