#include "output_file.h"

#include <ctime>
#include <filesystem>
#include <system_error>

#include "user_error.h"

namespace harsanyi {

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}
namespace fs = std::filesystem;

void OutputFile::check_target(const std::string& out, bool force) {
  if (out.empty()) throw UserError("no output path given");
  if (fs::is_directory(out)) throw UserError(out + ": is a directory; give a file name for the output");
  if (fs::exists(out) && !force)
    throw UserError(out + ": output file exists; pass --force to overwrite it");
  const fs::path parent = fs::absolute(out).parent_path();
  if (!fs::is_directory(parent))
    throw UserError(out + ": output directory " + parent.string() + " does not exist");
}

OutputFile::OutputFile(const std::string& out, bool force, const mpi::Communicator& comm)
    : final_(out), temp_(out + ".part"), comm_(comm) {
  if (comm_.root()) {
    check_target(out, force);
    try {
      file_ = std::make_unique<h5::File>(h5::File::create(temp_));
      if (comm_.distributed()) file_->close();
    } catch (const h5::H5Error& e) {
      throw UserError(e.what());
    }
  }
  if (!comm_.distributed()) return;
  mpi::remove_on_abort(temp_);
  comm_.barrier();
  try {
    file_ = std::make_unique<h5::File>(h5::File::open_parallel(temp_, comm_.comm()));
  } catch (const h5::H5Error& e) {
    throw UserError(e.what());
  }
}

OutputFile::~OutputFile() {
  mpi::forget_on_abort(temp_);
  if (committed_) return;
  if (file_ && file_->parallel()) file_->abandon();  // no collective close on a failing rank
  file_.reset();
  // A failure: whichever rank fails removes OUT.part (the file system is shared; the other
  // ranks are about to be aborted).
  std::error_code ec;
  fs::remove(temp_, ec);
}

void OutputFile::commit() {
  file_->set_attribute("complete", std::int64_t{1});
  file_->close();  // throws if buffered data could not be written: the destructor removes .part
  comm_.barrier();
  if (comm_.root()) {
    std::error_code ec;
    fs::rename(temp_, final_, ec);
    if (ec) throw UserError("cannot rename " + temp_ + " to " + final_ + ": " + ec.message());
  }
  comm_.barrier();
  committed_ = true;
}

}  // namespace harsanyi
