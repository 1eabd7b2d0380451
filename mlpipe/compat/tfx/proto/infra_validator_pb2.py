"""``tfx.proto.infra_validator_pb2``: InfraValidator's serving, validation and request specs.

Kubernetes pod overrides (``KubernetesConfig.serving_pod_overrides``) are left out: mlpipe validates
in a local serving process, never in a cluster pod.
"""

from mlpipe.compat.tfx.proto._build import build_file

_classes = build_file(
    "tfx.components.infra_validator",
    "mlpipe/compat/tfx/infra_validator.proto",
    {
        "ServingSpec": [
            "oneof serving_binary: TensorFlowServing tensorflow_serving = 1",
            "oneof serving_platform: LocalDockerConfig local_docker = 2",
            "oneof serving_platform: KubernetesConfig kubernetes = 3",
            "string model_name = 4",
        ],
        "TensorFlowServing": [
            "string image_name = 3",
            "repeated string tags = 1",
            "repeated string digests = 2",
        ],
        "LocalDockerConfig": [
            "string client_base_url = 1",
            "string client_api_version = 2",
            "int32 client_timeout_seconds = 3",
            "string host_ip_address = 4",
        ],
        "KubernetesConfig": ["string service_account_name = 1", "int32 active_deadline_seconds = 2"],
        "ValidationSpec": ["int32 max_loading_time_seconds = 1", "int32 num_tries = 2"],
        "RequestSpec": [
            "oneof kind: TensorFlowServingRequestSpec tensorflow_serving = 1",
            "string split_name = 2",
            "int32 num_examples = 3",
            "bool make_warmup = 4",
        ],
        "TensorFlowServingRequestSpec": [
            "repeated string tag_set = 1",
            "repeated string signature_names = 2",
        ],
    },  # fmt: skip
)
ServingSpec = _classes["ServingSpec"]
TensorFlowServing = _classes["TensorFlowServing"]
LocalDockerConfig = _classes["LocalDockerConfig"]
KubernetesConfig = _classes["KubernetesConfig"]
ValidationSpec = _classes["ValidationSpec"]
RequestSpec = _classes["RequestSpec"]
TensorFlowServingRequestSpec = _classes["TensorFlowServingRequestSpec"]
