"""The paper's methods, one small class each (see base.Method); `METHODS` maps result-table names to them."""

from fslib.methods.base import Method
from fslib.methods.co_ft import CoFT
from fslib.methods.co_train import GradientCoTrain, NaiveCoTrain
from fslib.methods.ord_fs import OrdFS, OrdFSDev
from fslib.methods.zero_shot import ZeroShot

METHODS: dict[str, Method] = {method.name: method for method in
                              (ZeroShot(), OrdFS(), OrdFSDev(), CoFT(), NaiveCoTrain(), GradientCoTrain())}
