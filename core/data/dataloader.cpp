// bigmodel::data::DataLoader (see dataloader.h). One Run per epoch holds the order and, with
// prefetch, a worker thread that loads batches into a bounded queue; the consumer pops them.
#include "core/data/dataloader.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops/creation.h"
#include "core/ops/shape_ops.h"
#include "core/random.h"

namespace bigmodel::data {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::string indices_str(const std::vector<int64_t>& idx) {
  std::string s = "[";
  for (size_t i = 0; i < idx.size() && i < 8; ++i) s += (i ? ", " : "") + std::to_string(idx[i]);
  return s + (idx.size() > 8 ? ", ...]" : "]");
}

// Rethrows the exception being handled with `where` added to its message; bigmodel errors
// keep their type (so Python and callers still see ValueError, IndexError, ...).
[[noreturn]] void rethrow_with_context(const std::string& where) {
  const std::string suffix = " [DataLoader: while loading " + where + "]";
  try {
    throw;
  } catch (const ShapeError& e) {
    throw ShapeError(e.what() + suffix);
  } catch (const ValueError& e) {
    throw ValueError(e.what() + suffix);
  } catch (const DTypeError& e) {
    throw DTypeError(e.what() + suffix);
  } catch (const IndexError& e) {
    throw IndexError(e.what() + suffix);
  } catch (const DeviceError& e) {
    throw DeviceError(e.what() + suffix);
  } catch (const OutOfMemoryError& e) {
    throw OutOfMemoryError(e.what() + suffix);
  } catch (const NotImplementedError& e) {
    throw NotImplementedError(e.what() + suffix);
  } catch (const Error& e) {
    throw Error(e.what() + suffix);
  } catch (const std::exception& e) {
    throw Error(std::string("[DataLoader] ") + e.what() + suffix);
  } catch (...) {
    throw Error("[DataLoader] unknown exception" + suffix);
  }
}

}  // namespace

Example collate(const std::vector<Example>& samples) {
  const char* op = "collate";
  BM_CHECK_VALUE(!samples.empty(), op, "no samples to batch");
  std::vector<Tensor> data, target;
  for (const Example& s : samples) {
    BM_CHECK_VALUE(s.data.defined(), op, "a sample has no data tensor");
    data.push_back(s.data);
    if (s.target.defined()) target.push_back(s.target);
  }
  BM_CHECK_VALUE(target.empty() || target.size() == samples.size(), op, target.size(), " of ", samples.size(),
                 " samples have a target; all or none must");
  return {stack(data, 0), target.empty() ? Tensor() : stack(target, 0)};
}

struct DataLoader::Run {
  std::shared_ptr<const Dataset> dataset;
  std::vector<int64_t> order;
  int64_t batch_size = 1;
  int64_t num_batches = 0;
  int64_t depth = 0;  // 0: no thread, load in the caller's thread
  int64_t next = 0;   // the next batch the caller loads (depth 0)

  std::mutex mutex;
  std::condition_variable cv;
  std::deque<Example> queue;
  bool finished = false;
  bool stop = false;
  std::exception_ptr error;
  std::thread worker;

  ~Run() {
    if (!worker.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    cv.notify_all();
    worker.join();
  }

  Example load(int64_t b) const {
    const int64_t start = b * batch_size, stop_at = std::min<int64_t>(start + batch_size, static_cast<int64_t>(order.size()));
    const std::vector<int64_t> idx(order.begin() + start, order.begin() + stop_at);
    std::optional<Example> batch;
    try {
      batch = dataset->get_batch(idx);
    } catch (...) {
      rethrow_with_context("the batch of dataset indices " + indices_str(idx));
    }
    if (batch) return std::move(*batch);
    std::vector<Example> samples;
    samples.reserve(idx.size());
    for (int64_t i : idx) {
      try {
        samples.push_back(dataset->get(i));
      } catch (...) {
        rethrow_with_context("dataset index " + std::to_string(i));
      }
    }
    try {
      return collate(samples);
    } catch (...) {
      rethrow_with_context("the batch of dataset indices " + indices_str(idx));
    }
  }

  // The prefetch thread: fills the queue up to `depth` batches, then ends or records the error.
  void work() {
    NoGradGuard no_grad;  // batches are data, never part of a graph
    for (int64_t b = 0; b < num_batches; ++b) {
      {
        std::unique_lock<std::mutex> lock(mutex);
        cv.wait(lock, [&] { return stop || static_cast<int64_t>(queue.size()) < depth; });
        if (stop) return;
      }
      Example e;
      try {
        e = load(b);
      } catch (...) {
        {
          std::lock_guard<std::mutex> lock(mutex);
          error = std::current_exception();
          finished = true;
        }
        cv.notify_all();
        return;
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        queue.push_back(std::move(e));
      }
      cv.notify_all();
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      finished = true;
    }
    cv.notify_all();
  }

  // The next batch into `out`; false at the end of the epoch. Rethrows a loading error.
  bool next_batch(Example& out) {
    if (depth == 0) {
      if (next >= num_batches) return false;
      NoGradGuard no_grad;
      out = load(next++);
      return true;
    }
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [&] { return !queue.empty() || finished; });
    if (!queue.empty()) {
      out = std::move(queue.front());
      queue.pop_front();
      lock.unlock();
      cv.notify_all();
      return true;
    }
    if (error) {
      std::exception_ptr e = error;
      error = nullptr;
      std::rethrow_exception(e);
    }
    return false;
  }
};

// ---- DataLoader ----------------------------------------------------------------------------

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(options) {
  const char* op = "DataLoader";
  BM_CHECK_VALUE(dataset_ != nullptr, op, "dataset is null");
  BM_CHECK_VALUE(options_.batch_size > 0, op, "batch_size should be a positive integer, got ", options_.batch_size);
  BM_CHECK_VALUE(options_.prefetch >= 0, op, "prefetch should be a non-negative integer, got ", options_.prefetch);
  BM_CHECK_VALUE(dataset_->size() >= 0, op, "dataset size is negative (", dataset_->size(), ")");
  if (options_.seed) {
    seed_ = *options_.seed;
  } else if (options_.shuffle) {
    seed_ = static_cast<uint64_t>(randint(0, int64_t{1} << 62, {1}).item().to_int());
  }
}

int64_t DataLoader::size() const {
  const int64_t n = dataset_->size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> DataLoader::order(int64_t epoch) const {
  const int64_t n = dataset_->size();
  std::vector<int64_t> out(static_cast<size_t>(n));
  if (!options_.shuffle) {
    for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = i;
    return out;
  }
  // A private Philox stream per (seed, epoch): the same on every platform and untouched by
  // whatever else draws from the default generator.
  Generator gen(splitmix64(seed_ ^ splitmix64(static_cast<uint64_t>(epoch))));
  Tensor perm = randperm(n, DType::Int64, Device(), &gen);
  const int64_t* p = perm.data<int64_t>();
  std::copy(p, p + n, out.begin());
  return out;
}

DataLoader::Iterator DataLoader::begin() {
  auto run = std::make_unique<Run>();
  run->dataset = dataset_;
  run->order = order(epoch_++);
  run->batch_size = options_.batch_size;
  run->num_batches = size();
  run->depth = run->num_batches > 0 ? options_.prefetch : 0;  // no batches: no thread to wait for
  if (run->depth > 0) {
    Run* r = run.get();
    run->worker = std::thread([r] { r->work(); });
  }
  return Iterator(std::move(run));
}

// ---- Iterator ------------------------------------------------------------------------------

DataLoader::Iterator::Iterator(std::unique_ptr<Run> run) : run_(std::move(run)) { advance(); }
DataLoader::Iterator::Iterator(Iterator&&) noexcept = default;
DataLoader::Iterator& DataLoader::Iterator::operator=(Iterator&&) noexcept = default;
DataLoader::Iterator::~Iterator() = default;

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  advance();
  return *this;
}

void DataLoader::Iterator::advance() {
  if (done_ || !run_) {
    done_ = true;
    return;
  }
  try {
    Example next;
    if (run_->next_batch(next)) {
      current_ = std::move(next);
      return;
    }
  } catch (...) {
    done_ = true;
    run_.reset();  // joins the (finished) thread
    throw;
  }
  done_ = true;
  current_ = Example();
  run_.reset();
}

}  // namespace bigmodel::data
