"""openapi-spec-validator on the document a running registry serves (STEWARD_URL)."""

import os

import requests
from openapi_spec_validator import validate

document = requests.get(f"{os.environ['STEWARD_URL']}/openapi.json", timeout=30).json()
validate(document)
print("openapi-spec-validator: the document is valid")
