"""Starts moto's server for the azp-kube test world, with EKS pointed at the world's
Kubernetes API simulator.

moto invents an unreachable cluster endpoint and 1400 random characters as the cluster CA,
so DescribeCluster would be useless to a client that connects. Before serving, this
launcher patches moto's EKS model: every cluster gets the simulator's endpoint and the
base64 PEM of the simulator's CA. It also exits when its parent goes away, so no moto
outlives the test process that started it.
"""

import argparse
import base64
import json
import os
import threading
import time


def patch_eks(endpoint: str, ca_pem: bytes, endpoints_file: str | None) -> None:
    """Clusters listed by ARN in `endpoints_file` ({"arn": {"endpoint", "ca"}}, written by
    the world before it creates them) get their own simulator; every other cluster gets the
    world's own."""
    import moto.eks.models as eks

    ca_data = base64.b64encode(ca_pem).decode("ascii")
    eks.ENDPOINT_TEMPLATE = endpoint
    original_init = eks.Cluster.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.endpoint = endpoint
        self.certificate_authority = {"data": ca_data}
        if endpoints_file and os.path.exists(endpoints_file):
            with open(endpoints_file, encoding="utf-8") as f:
                own = json.load(f).get(self.arn)
            if own:
                self.endpoint = own["endpoint"]
                self.certificate_authority = {"data": base64.b64encode(own["ca"].encode()).decode("ascii")}

    eks.Cluster.__init__ = init


def record_assumed_credentials(path: str) -> None:
    """Appends `access-key secret` of every assumed role to `path`, so the world can check
    the SigV4 signatures of EKS tokens made with them (moto does not check signatures)."""
    import moto.sts.models as sts

    original_init = sts.AssumedRole.__init__
    lock = threading.Lock()

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        with lock, open(path, "a", encoding="utf-8") as f:
            f.write(f"{self.access_key_id} {self.secret_access_key}\n")

    sts.AssumedRole.__init__ = init


def exit_with_parent() -> None:
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument(
        "--listen-fd",
        type=int,
        required=True,
        help="a socket already bound to --port and listening, inherited from the world",
    )
    parser.add_argument("--eks-endpoint", required=True)
    parser.add_argument("--eks-ca-file", required=True)
    parser.add_argument("--credentials-file")
    parser.add_argument("--eks-endpoints-file")
    args = parser.parse_args()
    exit_with_parent()
    if args.credentials_file:
        record_assumed_credentials(args.credentials_file)
    with open(args.eks_ca_file, "rb") as f:
        patch_eks(args.eks_endpoint, f.read(), args.eks_endpoints_file)
    serve(args.port, args.listen_fd)


def serve(port: int, listen_fd: int) -> None:
    """Serves moto's application on the socket the world bound before starting us (as
    moto's own main would, less the signal handlers): binding a port that was chosen and
    released earlier is a race another server of a parallel world can win (it did:
    CreateCluster got a docker-registry's 404)."""
    from moto.moto_server.threaded_moto_server import DomainDispatcherApplication, create_backend_app
    from moto.server import MotoRequestHandler
    from werkzeug.serving import make_server

    # moto builds some URLs (SQS queues, presigned posts) from MOTO_PORT, as its own main sets it.
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    server = make_server(
        "127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler, fd=listen_fd
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
