// The umbrella header of the C++ API: `#include <bigmodel/bigmodel.h>` brings in the tensor
// runtime, autograd and every op family. Installed as include/bigmodel/bigmodel.h.
#pragma once

#include "core/autograd.h"
#include "core/cuda_info.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/ops/attention.h"
#include "core/ops/compare.h"
#include "core/ops/conv.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/index.h"
#include "core/ops/linalg.h"
#include "core/ops/loss.h"
#include "core/ops/norm.h"
#include "core/ops/pool.h"
#include "core/ops/reduce.h"
#include "core/ops/rnn.h"
#include "core/ops/shape_ops.h"
#include "core/ops/softmax.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "core/tensor.h"
#include "nn/layers.h"
#include "nn/module.h"
#include "optim/sgd.h"

#define BIGMODEL_VERSION_MAJOR 0
#define BIGMODEL_VERSION_MINOR 1
