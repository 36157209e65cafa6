"""The ``wavy`` connection form for Airflow 2.11: Python methods over the one declaration in ``__init__``."""

from __future__ import annotations

from typing import Any

from airflow_provider_wavy import CONN_FIELDS, UI_FIELD_BEHAVIOUR


def ui_field_behaviour() -> dict[str, Any]:
    """Return the connection form's field behaviour (Airflow 2.11 reads it; 3.2+ the provider info)."""
    return {key.replace("-", "_"): value for key, value in UI_FIELD_BEHAVIOUR.items()}


def connection_form_widgets() -> dict[str, Any]:
    """Return the connection form's extra fields (Airflow 2.11 reads them; 3.2+ the provider info)."""
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import IntegerField, StringField
    from wtforms.validators import NumberRange, Optional

    field_classes = {"string": StringField, "integer": IntegerField, "number": StringField}
    widgets = {}
    for name, spec in CONN_FIELDS.items():
        kind = spec["schema"]["type"][0]
        default = spec["schema"].get("default")
        widgets[name] = field_classes[kind](
            lazy_gettext(spec["label"]),
            description=spec["description"],
            widget=BS3TextFieldWidget(),
            validators=[Optional(), NumberRange(min=0)] if kind == "integer" else [Optional()],
            # Prefilled as on Airflow 3.2+; a number is a text field here, so its default is text too.
            default=str(default) if kind == "number" and default is not None else default,
        )
    return widgets


__all__ = ["connection_form_widgets", "ui_field_behaviour"]
