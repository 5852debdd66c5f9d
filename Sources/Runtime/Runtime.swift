// Runtime room: engine entry points.
import Comm
