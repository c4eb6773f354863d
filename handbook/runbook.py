"""Render a first runbook from alert rules, and check a runbook against them.

A runbook has the service sections below, and one level-2 section per alert, named exactly
like the alert, with the level-3 headings in ALERT_HEADINGS.
"""

import re

from handbook.markdown import PLACEHOLDER, github_anchor, sections, without_comments
from handbook.rendering import template

TEMPLATE = "runbook.md.jinja"
SERVICE_SECTIONS = ["Overview", "Owners", "Dashboards", "SLOs", "Dependencies", "Deploy",
                    "Rollback", "Escalation"]
ALERT_HEADINGS = ["Meaning", "Impact", "Diagnosis", "Mitigation", "Escalation", "Rollback"]
# Prometheus alert names are identifiers; a level-2 heading like one is taken for an alert.
ALERT_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def render(alerts: list[dict], title: str) -> str:
    """A runbook draft for the alerts (handbook.alerts.describe): placeholders to fill in."""
    return template(TEMPLATE).render(alerts=alerts, title=title, placeholder=PLACEHOLDER)


def alert_sections(text: str) -> dict[str, str]:
    """Level-2 sections about an alert: not a service section, and named like an alert or
    holding a Meaning heading. Name -> the section's text, subsections included."""
    return {
        section.title: section.content for section in sections(text)
        if section.level == 2 and section.title not in SERVICE_SECTIONS
        and (ALERT_NAME.fullmatch(section.title)
             or re.search(r"^### Meaning\s*$", section.content, re.M))
    }


def check_alert_section(name: str, content: str) -> list[str]:
    subsections = [s for s in sections(content) if s.level == 3]
    found = [s.title for s in subsections if s.title in ALERT_HEADINGS]
    problems = []
    if found != ALERT_HEADINGS:
        problems.append(f"{name}: needs the headings {', '.join(ALERT_HEADINGS)} in this order "
                        f"(found: {', '.join(found) or 'none'})")
    diagnosis = next((s.content for s in subsections if s.title == "Diagnosis"), "")
    if "```promql" not in diagnosis:
        problems.append(f"{name}: Diagnosis has no ```promql query")
    return problems


def check(text: str, alerts: list[dict]) -> list[str]:
    """What is missing: service sections, a section for every alert and an alert for every
    section, the headings of each, runbook_url links, and leftover placeholders."""
    found = sections(text)
    top = {section.title: section for section in found if section.level == 2}
    problems = []
    for name in SERVICE_SECTIONS:
        if name not in top:
            problems.append(f"{name}: service section missing (## {name})")
        elif not without_comments(top[name].content):
            problems.append(f"{name}: empty")
    documented = alert_sections(text)
    names = [alert["name"] for alert in alerts]
    for alert in alerts:
        name, url = alert["name"], alert.get("runbook_url")
        if name not in documented:
            problems.append(f"{name}: alert has no section (## {name})")
        if not url:
            problems.append(f"{name}: alert has no runbook_url annotation")
        elif not url.endswith(f"#{github_anchor(name)}"):
            problems.append(f"{name}: runbook_url {url} does not end in "
                            f"#{github_anchor(name)}, the section's anchor")
    problems += [f"{name}: section for an alert the rules do not define"
                 for name in documented if name not in names]
    for name, content in documented.items():
        problems += check_alert_section(name, content)
    parent = ""
    for section in found:
        parent = section.title if section.level <= 2 else parent
        where = section.title if section.level <= 2 else f"{parent} > {section.title}"
        if PLACEHOLDER in without_comments(section.body):
            problems.append(f"{where}: still {PLACEHOLDER}")
    return problems
