// bigmodel::data::DataLoader, the C++ twin of python/bigmodel/data/dataloader.py: iterates a
// dataset in batches, optionally shuffled with a seeded per-epoch permutation, while a
// background thread prepares the next batches.
//   auto ds = std::make_shared<data::TensorDataset>(images, labels);
//   data::DataLoader loader(ds, {/*batch_size=*/64, /*shuffle=*/true});
//   for (const data::Example& batch : loader) { ... batch.data, batch.target ... }
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/data/dataset.h"

namespace bigmodel::data {

struct DataLoaderOptions {
  int64_t batch_size = 1;
  bool shuffle = false;
  bool drop_last = false;  // drop a final batch smaller than batch_size
  // Shuffling seed. Epoch e uses a permutation drawn from seed and e alone, so a loader
  // built with the same seed repeats its epochs. None: a seed drawn from bigmodel's
  // default generator at construction (so manual_seed fixes it).
  std::optional<uint64_t> seed = std::nullopt;
  // Batches a background thread prepares ahead; 0 loads in the caller's thread. The
  // batches are the same either way.
  int64_t prefetch = 2;
};

class DataLoader {
  struct Run;  // one epoch's iteration state (and prefetch thread)

 public:
  // ValueError "[DataLoader] ..." for a null dataset, batch_size < 1 or prefetch < 0.
  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {});

  struct End {};
  // A single-pass input iterator over one epoch's batches. An exception from the dataset
  // (or from stacking its samples) is rethrown here in the caller's thread, with the same
  // type for bigmodel errors and " [DataLoader: while loading dataset index 17]" (or the
  // batch's indices) added to the message; other exceptions become bigmodel::Error.
  // Destroying it early (break) stops and joins the prefetch thread.
  class Iterator {
   public:
    Iterator(Iterator&&) noexcept;
    Iterator& operator=(Iterator&&) noexcept;
    ~Iterator();
    const Example& operator*() const { return current_; }
    const Example* operator->() const { return &current_; }
    Iterator& operator++();
    bool operator!=(End) const { return !done_; }
    bool operator==(End) const { return done_; }

   private:
    friend class DataLoader;
    explicit Iterator(std::unique_ptr<Run> run);
    void advance();
    std::unique_ptr<Run> run_;
    Example current_;
    bool done_ = false;
  };

  // Starts the next epoch: draws its order (in this thread), starts the prefetch thread
  // and waits for the first batch.
  Iterator begin();
  End end() const { return {}; }

  // Batches per epoch.
  int64_t size() const;
  // The epoch the next begin() starts (0 first); set_epoch picks it, e.g. when resuming.
  int64_t epoch() const { return epoch_; }
  void set_epoch(int64_t epoch) { epoch_ = epoch; }
  // The sample order of an epoch (0..n-1 unless shuffling).
  std::vector<int64_t> order(int64_t epoch) const;
  const DataLoaderOptions& options() const { return options_; }
  const Dataset& dataset() const { return *dataset_; }

 private:
  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  uint64_t seed_ = 0;
  int64_t epoch_ = 0;
};

// Stacks samples along a new dim 0 (data and, when every sample has one, target); what the
// loader does when the dataset has no get_batch. ValueError/ShapeError for mixed samples.
Example collate(const std::vector<Example>& samples);

}  // namespace bigmodel::data
