"""Iatrogenic risk knowledge: the ANSM interaction thesaurus (entries, levels, conditions, class
graph), the evaluation of multi-level conditions, structured-dose arithmetic, and the rule data for
duplicates and patient-specific risks. Rules live in :mod:`checker.rules.interactions`,
:mod:`checker.rules.duplicates` and :mod:`checker.rules.patient_risks`; treatment periods in
:mod:`checker.periods`. Build scripts (``tools/build_thesaurus.py``, ``tools/build_stopp.py``) read ../shared only
when a maintainer runs them."""
