from .errors import *
from .client import MQTTClient
