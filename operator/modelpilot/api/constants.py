"""Names of the API and of the labels and annotations the operator owns."""

GROUP = "modelpilot.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAMES = ["mdep", "md"]

# Labels on every child object and pod.
LABEL_MODEL = f"{GROUP}/model"
LABEL_REVISION = f"{GROUP}/revision"
LABEL_ROLE = f"{GROUP}/role"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "modelpilot"

# Port of every Service the operator makes (model, preview, per-revision); routes point at it.
SERVICE_PORT = 80

# The name of the model server container in the pod template; a `template` override merges into it by this name.
SERVER_CONTAINER = "model-server"

# Requests from the kubectl plugin: "<verb>:<unique id>", consumed once (the id is recorded in status.lastAction).
ANNOTATION_ACTION = f"{GROUP}/action"
