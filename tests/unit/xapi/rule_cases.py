"""Constants shared by the table-driven xAPI rule tests (``test_rules_*.py``): the two
versions a case is parsed under, and a second agent (an mbox only) for the cases that need
one besides the learner."""

from __future__ import annotations

from shared.xapi import XapiVersion

V1 = XapiVersion.V1_0_3
V2 = XapiVersion.V2_0

AGENT_B = {"mbox": "mailto:b@example.edu"}
