-- At most one enabled link per room (0004). A disabled link keeps its
-- history, so an operator resolves two spellings of one room by disabling
-- all but one (`meetpool links disable`): that moves the disabled links'
-- coming sessions away. `meetpool migrate` lists the duplicates when this
-- index cannot be built.
CREATE UNIQUE INDEX meeting_links_room ON meeting_links_pool (room) WHERE is_available;
