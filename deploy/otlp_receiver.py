"""A minimal OTLP/gRPC trace receiver for the observability suite: it takes what an
exporter sends to TraceService/Export and appends each span as a JSON line (service, name,
attributes) to a file.

    python otlp_receiver.py PORT_FILE SPANS_FILE

Needs grpcio and opentelemetry-proto (observe-test.py installs them in a virtualenv).
"""

import json
import sys
import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()

    def Export(self, request, context):
        with self.lock, open(self.out, "a") as f:
            for resource_spans in request.resource_spans:
                resource = {a.key: value(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        attributes = {a.key: value(a.value) for a in span.attributes}
                        f.write(json.dumps({"service": resource.get("service.name"), "name": span.name,
                                            "attributes": attributes}) + "\n")
        return trace_service_pb2.ExportTraceServiceResponse()


def main():
    port_file, out = sys.argv[1], sys.argv[2]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Receiver(out), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with open(port_file, "w") as f:
        f.write(str(port))
    server.wait_for_termination()


if __name__ == "__main__":
    main()
