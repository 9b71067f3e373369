-- No query looks attempts up by operator: the call screen's counts come from operator_tally,
-- and results, exports and checks read a round's attempts through its members. The index
-- still took one more B-tree insert for every recorded call, on a page of its own per operator,
-- so each group commit wrote one more page per operator in it to the WAL and the checkpoint.
DROP INDEX IF EXISTS attempts_operator;
