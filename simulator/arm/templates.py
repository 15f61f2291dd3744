"""ARM template execution, limited to enterprise policies with literal values and [parameters('x')]."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from simulator.arm.policies import POLICY_API_VERSIONS, POLICY_TYPE

_PARAMETER_EXPR = re.compile(r"^\[\s*parameters\(\s*'([^']+)'\s*\)\s*\]$", re.IGNORECASE)
_FUNCTION = re.compile(r"^\[\s*([A-Za-z_][\w.]*)\s*\(")
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "securestring": (str,),
    "int": (int,),
    "bool": (bool,),
    "object": (dict,),
    "secureobject": (dict,),
    "array": (list,),
}


class TemplateError(Exception):
    """A template that cannot be deployed; code and message as ARM reports them."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class PlannedResource:
    """One resource of a template with every expression evaluated."""

    type: str
    api_version: str
    name: str
    body: dict[str, Any]  # location, kind, identity, properties, tags


@dataclass
class TemplatePlan:
    """What a deployment will do: its resources and outputs."""

    resources: list[PlannedResource]
    outputs: dict[str, dict[str, Any]]


def _invalid(message: str) -> TemplateError:
    return TemplateError("InvalidTemplate", f"Deployment template validation failed: '{message}'.")


def resolve_parameters(template: dict[str, Any], supplied: dict[str, Any]) -> dict[str, Any]:
    """Parameter values from the deployment's {x: {value}} and the template's defaultValue."""
    declared = template.get("parameters") or {}
    if not isinstance(declared, dict):
        raise _invalid("The template 'parameters' section must be an object")
    if not isinstance(supplied, dict):
        raise TemplateError("InvalidDeploymentParameters", "The deployment parameters must be an object.")
    unknown = sorted(set(supplied) - set(declared))
    if unknown:
        raise TemplateError(
            "InvalidTemplate",
            f"Deployment template validation failed: 'The template parameters '{', '.join(unknown)}' in the "
            "parameters file are not valid; they are not present in the original template and can therefore "
            "not "
            "be provided at deployment time. The only supported parameters for this template are "
            f"'{', '.join(declared)}'.'.",
        )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        spec = spec or {}
        if name in supplied:
            entry = supplied[name]
            if not isinstance(entry, dict) or "value" not in entry:
                if isinstance(entry, dict) and "reference" in entry:
                    raise TemplateError(
                        "UnsupportedTemplateFeature",
                        f"Key Vault parameter references (parameter '{name}') are not supported by the "
                        "simulator.",
                    )
                raise TemplateError(
                    "InvalidDeploymentParameters", f"The parameter '{name}' must be an object with a 'value'."
                )
            value = entry["value"]
        elif "defaultValue" in spec:
            value = spec["defaultValue"]
            if isinstance(value, str) and _is_expression(value):
                raise _unsupported_expression(value, f"parameters.{name}.defaultValue")
        else:
            raise _invalid(
                f"The value for the template parameter '{name}' at line '1' and column '1' is not provided"
            )
        kind = str(spec.get("type", "string")).lower()
        expected = _TYPES.get(kind)
        ok = expected is None or (
            isinstance(value, expected) and not (kind == "int" and isinstance(value, bool))
        )
        if not ok:
            raise _invalid(
                f"The provided value for the template parameter '{name}' is not valid. Expected a value "
                f"of type '{spec.get('type')}'"
            )
        allowed = spec.get("allowedValues")
        if allowed is not None and value not in allowed:
            raise _invalid(
                f"The provided value '{value}' for the template parameter '{name}' is not valid. "
                f"The value must be one of: {allowed}"
            )
        values[name] = value
    return values


def _is_expression(value: str) -> bool:
    return value.startswith("[") and value.endswith("]") and not value.startswith("[[")


def _unsupported_expression(value: str, where: str) -> TemplateError:
    function = _FUNCTION.match(value)
    name = function.group(1) if function else value
    return TemplateError(
        "InvalidTemplate",
        f"Deployment template validation failed: 'The template expression '{value}' at '{where}' uses the "
        "function "
        f"'{name}', which the simulator does not evaluate. Only literal values and [parameters('name')] are "
        "supported.'.",
    )


def evaluate(value: Any, params: dict[str, Any], where: str) -> Any:
    """Evaluate literals and [parameters('x')] recursively; anything else is refused."""
    if isinstance(value, str):
        if value.startswith("[["):
            return value[1:]
        if not _is_expression(value):
            return value
        match = _PARAMETER_EXPR.match(value)
        if match is None:
            raise _unsupported_expression(value, where)
        name = match.group(1)
        if name not in params:
            raise _invalid(
                f"The template parameter '{name}' is not found. Please see https://aka.ms/arm-syntax-"
                "parameters for usage details"
            )
        return params[name]
    if isinstance(value, dict):
        return {k: evaluate(v, params, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate(v, params, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def plan(template: Any, supplied_parameters: Any) -> TemplatePlan:
    """Check a template and evaluate it; raises TemplateError for anything the simulator cannot deploy."""
    if not isinstance(template, dict):
        raise _invalid("The template must be a JSON object")
    if "templateLink" in template:
        raise TemplateError(
            "UnsupportedTemplateFeature", "Linked templates (templateLink) are not supported."
        )
    params = resolve_parameters(template, supplied_parameters or {})
    if template.get("variables"):
        raise TemplateError(
            "InvalidTemplate",
            "Deployment template validation failed: 'Template variables are not supported by the simulator; "
            "use "
            "parameters or literal values.'.",
        )
    resources = template.get("resources")
    if not isinstance(resources, list):
        raise _invalid("The template 'resources' section must be an array")
    planned: list[PlannedResource] = []
    for index, raw in enumerate(resources):
        where = f"resources[{index}]"
        if not isinstance(raw, dict):
            raise _invalid(f"The template resource at '{where}' must be an object")
        resource = evaluate(raw, params, where)
        if "copy" in resource:
            raise _unsupported_expression("copy", f"{where}.copy")
        if resource.get("condition") is False:
            continue
        rtype = str(resource.get("type", ""))
        if rtype.lower() != POLICY_TYPE.lower():
            raise TemplateError(
                "UnsupportedResourceType",
                f"The resource type '{rtype}' at '{where}' is not supported by the simulator: templates may "
                "only "
                f"deploy '{POLICY_TYPE}'.",
            )
        api_version = str(resource.get("apiVersion", ""))
        if api_version not in POLICY_API_VERSIONS:
            raise TemplateError(
                "NoRegisteredProviderFound",
                f"No registered resource provider found for location '{resource.get('location')}' and API "
                "version "
                f"'{api_version}' for type 'enterprisePolicies'. The supported api-versions are "
                f"'{', '.join(POLICY_API_VERSIONS)}'.",
            )
        name = resource.get("name")
        if not isinstance(name, str) or not name or "/" in name:
            raise _invalid(f"The template resource '{name}' at '{where}' has an invalid name")
        body = {
            k: resource[k] for k in ("location", "kind", "identity", "properties", "tags") if k in resource
        }
        planned.append(PlannedResource(type=POLICY_TYPE, api_version=api_version, name=name, body=body))
    outputs: dict[str, dict[str, Any]] = {}
    for name, spec in (template.get("outputs") or {}).items():
        spec = spec or {}
        value = evaluate(spec.get("value"), params, f"outputs.{name}")
        kind = str(spec.get("type", "string"))
        outputs[name] = {"type": kind[:1].upper() + kind[1:], "value": value}
    return TemplatePlan(resources=planned, outputs=outputs)
