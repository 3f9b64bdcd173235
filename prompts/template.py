"""Prompt templates: versioned YAML files in `prompts/`, validated at load, rendered explicitly.

A template file holds `version`, `description`, `system` and `user` (f-string syntax, as
langchain-core's `ChatPromptTemplate` reads it); unknown keys are errors, so a typo cannot silently
drop part of a prompt. Rendering takes explicit variables and a missing one raises an error that
names it, instead of sending a prompt with a hole. The version travels with every suggestion so
the audit log tells which wording produced which reply.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sopilot.core.errors import ConfigError

PROMPTS_DIR = Path(__file__).resolve().parent
_FENCE = re.compile(r"<\s*/?\s*customer_message\s*>", re.IGNORECASE)


class PromptError(ConfigError):
    """A prompt template is malformed, or is rendered without a variable it needs."""


class MissingVariablesError(PromptError):
    """A template was rendered without some of its variables."""

    def __init__(self, name: str, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(f"prompt {name!r} needs variable(s) {missing} that were not given: "
                         "pass them to render(), or remove them from the template")


class PromptFile(BaseModel):
    """The YAML form of a prompt template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, description="Recorded with every suggestion; bump it on every change.")
    description: str = ""
    system: str = Field(min_length=1)
    user: str = Field(min_length=1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Prompt:
    """A loaded, validated chat prompt."""

    name: str
    version: str
    description: str
    variables: frozenset[str]
    """Every variable the system and user templates use."""
    template: Any = dataclasses.field(repr=False, compare=False)
    """The langchain-core `ChatPromptTemplate`."""

    def render(self, **variables: Any) -> list:
        """The chat messages (system, human) with `variables` filled in.

        Raises:
            MissingVariablesError: a variable the template uses was not given (its name is in the message).
        """
        missing = sorted(self.variables - variables.keys())
        if missing:
            raise MissingVariablesError(self.name, missing)
        return self.template.format_messages(**{k: v for k, v in variables.items() if k in self.variables})


def parse_prompt(name: str, text: str, *, source: str = "<string>") -> Prompt:
    """Validate the YAML text of a template and compile it.

    Raises:
        PromptError: not YAML, unknown or missing keys, or a template that is not valid f-string syntax.
    """
    import yaml
    from langchain_core.prompts import ChatPromptTemplate

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PromptError(f"{source}: not valid YAML ({exc})") from None
    if not isinstance(data, Mapping):
        raise PromptError(f"{source}: expected a mapping with version, system and user")
    try:
        model = PromptFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors())
        raise PromptError(f"{source}: {problems} (valid keys: {sorted(PromptFile.model_fields)})") from None
    try:
        template = ChatPromptTemplate.from_messages([("system", model.system), ("human", model.user)])
    except (ValueError, KeyError) as exc:
        raise PromptError(f"{source}: the template is not valid f-string syntax ({exc}); write a literal brace "
                          "as {{ or }}") from None
    return Prompt(name=name, version=model.version, description=model.description,
                  variables=frozenset(template.input_variables), template=template)


@functools.cache
def load_prompt(name: str, directory: Path = PROMPTS_DIR) -> Prompt:
    """The template `directory/name.yaml`, loaded and validated once per process."""
    path = directory / f"{name}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        available = sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []
        raise PromptError(f"cannot read prompt {name!r} at {path}: {exc.strerror}; available: {available}") from None
    return parse_prompt(name, text, source=str(path))


def fence(message: str) -> str:
    """The customer's message made safe to quote between `<customer_message>` tags.

    Tags inside the message are neutralised so the message cannot close the quote and continue as
    instructions.
    """
    return _FENCE.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), message.strip())
