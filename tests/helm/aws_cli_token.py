"""Prints the EKS token the AWS CLI makes (awscli's TokenGenerator, as `aws eks
get-token` uses it) for the credentials in the environment, at a fixed time.

    python aws_cli_token.py CLUSTER REGION EPOCH_SECONDS
"""

import datetime
import sys

import botocore.auth
import botocore.session
from awscli.customizations.eks.get_token import STSClientFactory, TokenGenerator

cluster, region, epoch = sys.argv[1], sys.argv[2], int(sys.argv[3])
frozen = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).replace(tzinfo=None)
botocore.auth.get_current_datetime = lambda *args, **kwargs: frozen

session = botocore.session.get_session()
sts = STSClientFactory(session).get_sts_client(region_name=region)
print(TokenGenerator(sts).get_token(cluster))
