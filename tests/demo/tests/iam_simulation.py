"""Evaluates one request against one IAM policy document with moto's IAM evaluator,
for what moto's server cannot enforce itself (the trust policies of roles in other
accounts, and the actions of REST-JSON services such as EKS, whose signatures its
checker recomputes wrongly). Prints PERMITTED, DENIED or NEUTRAL (implicitly denied).

    python iam_simulation.py POLICY_JSON ACTION RESOURCE [PRINCIPAL [CONDITIONS_JSON]]
"""

import json
import sys

from moto.iam.access_control import IAMPolicy


def main() -> None:
    policy, action, resource = sys.argv[1:4]
    principal = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
    conditions = json.loads(sys.argv[5]) if len(sys.argv) > 5 else None
    result = IAMPolicy(policy).is_action_permitted(action, resource, principal, conditions)
    print(result.name if hasattr(result, "name") else result)


if __name__ == "__main__":
    main()
