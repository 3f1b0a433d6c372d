"""Paper Table 4 over seeds (experiments.distill_mnist): the networks' test errors, and the
paper's two claims about them as paired comparisons (calibration.verdicts)."""
from data.run_directory import section_results

TABLE4 = section_results.Kind('distillation_mnist', 'distill_mnist.json')


def claims(ls_key):
  """The smoothed teacher (network `ls_key`) is better, its student worse (test error %)."""
  return [
      dict(first=ls_key, second='teacher_dropout', expected_sign=-1,
           text='the label-smoothed teacher has lower test error than the dropout teacher'),
      dict(first=f'student_of_{ls_key}', second='student_of_teacher_dropout', expected_sign=1,
           text="the label-smoothed teacher's student has higher test error than the dropout "
                "teacher's")]
