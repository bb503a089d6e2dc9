"""The decision policy: candidates, eligibility, contact policy, arbitration, exploration and
control groups. Serving builds a ``DecisionRequest`` per customer and calls
``DecisionEngine.decide``; see docs/decision-policy.md."""

from models.policy.config import (
    DEFAULT_ARBITRATION_PATH,
    DEFAULT_CONTACT_POLICY_PATH,
    ArbitrationConfig,
    ContactPolicy,
    PolicyConfigError,
    load_arbitration,
    load_contact_policy,
)
from models.policy.engine import DecisionEngine
from models.policy.history import with_send
from models.policy.logrecord import LogField, request_from_log_record
from models.policy.types import (
    MODEL_TASKS,
    POLICY_VERSION,
    Action,
    Alternative,
    Assignment,
    Decision,
    DecisionInputError,
    DecisionRequest,
    Exclusion,
    ModelSet,
    ReasonCode,
    Scores,
    ScoringError,
)

__all__ = [
    "DEFAULT_ARBITRATION_PATH",
    "DEFAULT_CONTACT_POLICY_PATH",
    "MODEL_TASKS",
    "POLICY_VERSION",
    "Action",
    "Alternative",
    "ArbitrationConfig",
    "Assignment",
    "ContactPolicy",
    "Decision",
    "DecisionEngine",
    "DecisionInputError",
    "DecisionRequest",
    "Exclusion",
    "LogField",
    "ModelSet",
    "PolicyConfigError",
    "ReasonCode",
    "Scores",
    "ScoringError",
    "load_arbitration",
    "load_contact_policy",
    "request_from_log_record",
    "with_send",
]
