// The C++ process-group API in one process: world size 1 collectives over MPI (or the
// "built without MPI" error), and the errors before init and for unknown backends.
#include <gtest/gtest.h>

#include "core/cuda_info.h"
#include "core/ops/creation.h"
#include "distributed/process_group.h"

using namespace bigmodel;
namespace dist = bigmodel::distributed;

TEST(Distributed, BackendErrors) {
  EXPECT_FALSE(dist::is_initialized());
  EXPECT_THROW(dist::default_group("all_reduce"), Error);
  if (!cuda::is_available()) {  // without a GPU (or without NCCL) the nccl backend refuses
    EXPECT_THROW(dist::init_process_group("nccl"), Error);
  }
  EXPECT_THROW(dist::init_process_group("gloo"), ValueError);
  EXPECT_FALSE(dist::is_initialized());
}

TEST(Distributed, WorldSizeOne) {
  if (!dist::mpi_available()) {
    try {
      dist::init_process_group("mpi");
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("built without MPI"), std::string::npos);
    }
    return;
  }
  auto pg = dist::init_process_group("mpi");
  ASSERT_EQ(pg->size(), 1);
  EXPECT_EQ(pg->rank(), 0);
  Tensor t = from_vector<float>({1.5f, -2.f, 4.f}, {3});
  pg->all_reduce(t, dist::ReduceOp::Max);
  EXPECT_EQ(t.data<float>()[1], -2.f);
  Tensor h = full({2}, 3.0, DType::Float16);
  auto work = pg->all_reduce_async(h, dist::ReduceOp::Avg);
  work->wait();
  EXPECT_TRUE(work->is_completed());
  EXPECT_EQ(static_cast<float>(h.data<Half>()[0]), 3.f);
  std::vector<Tensor> outs{zeros({3}, DType::Float32)};
  pg->all_gather(outs, t);
  EXPECT_EQ(outs[0].data<float>()[2], 4.f);
  EXPECT_THROW(pg->broadcast(t, 1), ValueError);
  pg->barrier();
  dist::destroy_process_group();
  EXPECT_FALSE(dist::is_initialized());
}
