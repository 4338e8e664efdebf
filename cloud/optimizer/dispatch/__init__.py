"""Live dispatch: orders and vehicle events in, versioned route plans out (docs/dispatch.md).

`Dispatcher` is the logic (no I/O); `DispatchService` joins it to Kafka and the database.
"""

from cloud.optimizer.dispatch.dispatcher import PLAN_COMMAND_ID, DispatchConfig, Dispatcher
from cloud.optimizer.dispatch.messages import MessageError, parse_domain_event, parse_orders_doc
from cloud.optimizer.dispatch.planner import Fix, PlannerConfig
from cloud.optimizer.dispatch.topics import orders_topic

__all__ = [
    "PLAN_COMMAND_ID",
    "DispatchConfig",
    "Dispatcher",
    "Fix",
    "MessageError",
    "PlannerConfig",
    "orders_topic",
    "parse_domain_event",
    "parse_orders_doc",
]
