//! The routing state: the table of deployments every request reads
//! (`table`), kept current from the store (`sync`), the per-deployment
//! traffic counters (`traffic`) reported back on the heartbeat
//! (`heartbeat`), and one account of the store's reachability (`outage`).
//! Nothing on the request path waits on the store.

pub mod closing;
pub mod heartbeat;
pub mod outage;
pub mod sync;
pub mod table;
pub mod traffic;
