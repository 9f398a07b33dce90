"""Shared by the applicant portal's tests: a Pays de la Loire company with its account, its form
answers as a person types them, and a day when a call of the example programme is open."""
from __future__ import annotations

from datetime import datetime

from rules.calendar import PARIS

PDL = "pdl-ami-idf-exemple"
# AMI-2020-2 is open from 01/05/2020 to 30/06/2020.
CALL_OPEN = datetime(2020, 5, 15, 10, 0, tzinfo=PARIS)
LOIRE_SIREN = "552100554"
LOIRE_USER = {"username": "entreprise.loire", "display_name": "Mme Leroy (Loire Composites)", "role": "applicant",
              "siren": LOIRE_SIREN}
COMPANY_FORM = {
    "siren": "552 100 554", "name": "Loire Composites SAS", "email": "contact@loire-composites.example.fr",
    "region": "Pays de la Loire", "employees": "48", "turnover": "7 200 000", "balance_sheet": "",
    "equity": "850 000,00", "first_fy_months": "36", "activity": "industrial", "in_difficulty": "non",
    "tax_social_up_to_date": "oui",
}
PROJECT_FORM = {"line": "1", "title": "Diagnostic de la ligne de drapage", "description": "Étude de faisabilité "
                "d'une cellule robotisée.", "expense": "12 500,50", "aid_requested": "6 250,25"}
DE_MINIMIS_FORM = {"aid_1_date": "12/03/2019", "aid_1_amount": "15 000", "attestation": "oui"}
