"""The grader (bigramlab/grade/, `bigramlab grade`): the judge without a kernel, graded
submissions, isolation."""
