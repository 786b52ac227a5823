-- Reserved: the number of another branch's migration (0010_holds), which
-- the console's 0011 follows. This placeholder only keeps the numbers
-- contiguous on the console's branch; it changes nothing, and the merge
-- drops it for the real 0010.
SELECT 1;
