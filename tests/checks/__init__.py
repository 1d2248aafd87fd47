"""The exercise checks (bigramlab/checks/): one file per chapter; each lists CHECKS and
WRONG, which tests/grading/test_judge.py also reads."""
