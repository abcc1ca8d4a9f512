// Generic binders: a struct from its field table (keyword constructor,
// attributes, repr), an enum from its values, run / prepare arguments from
// keyword arguments, and a Plan<Op> with create -> workspace_bytes -> prepare
// -> run. Every op's binding is one line in module.cpp built from these.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <kvserve/plan.hpp>

#include "convert.hpp"
#include "fields.hpp"

namespace kvserve::py {

using namespace nanobind::literals;

// ------------------------------------------------------------- structs ----

template <class T>
std::string field_names() {
  std::string names;
  for_each_field<T>([&](const auto& f) { names += (names.empty() ? "" : ", ") + std::string(f.name); });
  return names;
}

template <class T>
bool has_field(std::string_view name) {
  bool found = false;
  for_each_field<T>([&](const auto& f) { found = found || name == f.name; });
  return found;
}

[[noreturn]] inline void throw_unknown(std::string_view where, std::string_view name, const std::string& names) {
  throw nb::type_error((std::string(where) + ": no field '" + std::string(name) + "' (fields: " + names + ")").c_str());
}

// A Python class over T with T's fields as attributes and a keyword-only
// constructor: Desc(max_batch=8, kv=PagedKvDesc(...)). Unknown names and
// values of the wrong type raise TypeError naming the field.
template <class T>
nb::class_<T> bind_struct(nb::handle scope, const char* name) {
  nb::class_<T> cls(scope, name);
  cls.def("__init__", [name](T* self, nb::kwargs kw) {
    T value{};
    for (auto [key, given] : kw) {
      const std::string field = nb::cast<std::string>(key);
      if (!has_field<T>(field)) throw_unknown(name, field, field_names<T>());
      for_each_field<T>([&](const auto& f) {
        if (field != f.name || nb::try_cast(given, value.*(f.member))) return;
        // The expected type, named after the field's default value (only
        // optional fields default to None, and those are all floats).
        nb::object current = nb::cast(value.*(f.member));
        const std::string expected = current.is_none() ? "float or None" : nb::type_name(current.type()).c_str();
        throw nb::type_error((std::string(name) + "." + field + ": expected " + expected + ", got " +
                              nb::type_name(given.type()).c_str())
                                 .c_str());
      });
    }
    new (self) T(std::move(value));
  });
  for_each_field<T>([&](const auto& f) { cls.def_rw(f.name, f.member); });
  cls.def("__repr__", [name](nb::handle self) {
    std::string text = std::string(name) + "(";
    bool first = true;
    for_each_field<T>([&](const auto& f) {
      text += (first ? "" : ", ") + std::string(f.name) + "=" + nb::cast<std::string>(nb::repr(self.attr(f.name)));
      first = false;
    });
    return text + ")";
  });
  cls.def("__eq__", [](nb::handle a, nb::handle b) {
    if (!nb::isinstance<T>(b)) return false;
    bool same = true;
    for_each_field<T>([&](const auto& f) { same = same && a.attr(f.name).equal(b.attr(f.name)); });
    return same;
  });
  nb::list names;
  for_each_field<T>([&](const auto& f) { names.append(f.name); });
  cls.attr("_fields") = nb::tuple(names);
  return cls;
}

template <class E>
void bind_enum(nb::handle scope, const char* name, std::initializer_list<std::pair<const char*, E>> values) {
  nb::enum_<E> e(scope, name);
  for (const auto& [n, v] : values) e.value(n, v);
}

// ----------------------------------------------------- call arguments -----

template <class T>
void fill(T& out, nb::handle source, Holder& hold, const std::string& path);

// One member from one Python value; `path` names it in messages ("kv.indptr").
template <class M>
void assign(M& member, nb::handle value, Holder& hold, const std::string& path) {
  if constexpr (std::is_same_v<M, TensorView>) {
    member = to_view(value, path, hold);
  } else if constexpr (std::is_same_v<M, std::span<const std::int32_t>>) {
    if (!value.is_none()) member = to_host_ints(value, path, hold);
  } else if constexpr (std::is_same_v<M, std::uint64_t>) {
    if (!value.is_none() && !nb::try_cast(value, member, false))
      throw_invalid(hold.where, path, "an int in [0, 2^64)", nb::cast<std::string>(nb::repr(value)));
  } else {
    static_assert(HasFields<M>, "a member type the bindings cannot fill");
    if (!value.is_none()) fill(member, value, hold, path + ".");
  }
}

// T's members from a dict or keyword arguments (every key must be a field) or
// from any object's attributes of the same names (a missing one is absent):
// a BlockManager PageTable serves as PagedKvLengths this way.
template <class T>
void fill(T& out, nb::handle source, Holder& hold, const std::string& path) {
  if (nb::isinstance<nb::dict>(source)) {
    for (auto [key, value] : nb::borrow<nb::dict>(source)) {
      const std::string name = nb::cast<std::string>(key);
      if (!has_field<T>(name)) throw_unknown(hold.where, path + name, field_names<T>());
    }
  }
  for_each_field<T>([&](const auto& f) {
    nb::object value;
    if (nb::isinstance<nb::dict>(source)) {
      nb::dict d = nb::borrow<nb::dict>(source);
      if (d.contains(f.name)) value = d[f.name];
    } else if (nb::hasattr(source, f.name)) {
      value = source.attr(f.name);
    }
    if (value.is_valid()) assign(out.*(f.member), value, hold, path + f.name);
  });
}

// uint8 / int8 arrays stand for an fp8 pool's elements when the descriptor's
// KV cache is fp8 (torch cannot export fp8 through DLPack everywhere).
template <class Desc>
std::optional<DType> fp8_pool_dtype(const Desc& d) {
  if constexpr (requires { d.kv.dtype; }) {
    if (is_fp8(d.kv.dtype)) return d.kv.dtype;
  }
  return std::nullopt;
}

// What kind of Python value fills a member of type M ("tensor", "ints",
// "int" or the name of a group struct): the stub generator reads these.
template <class M>
std::string kind_of() {
  if constexpr (std::is_same_v<M, TensorView>) return "tensor";
  else if constexpr (std::is_same_v<M, std::span<const std::int32_t>>) return "ints";
  else if constexpr (std::is_same_v<M, std::uint64_t>) return "int";
  else return Fields<M>::kName;
}

// ((name, kind), ...) of T's fields, groups expanded as (name, kind, (...)).
template <class T>
nb::tuple describe_fields() {
  nb::list out;
  for_each_field<T>([&](const auto& f) {
    using M = std::remove_reference_t<decltype(std::declval<T&>().*(f.member))>;
    if constexpr (std::is_same_v<M, TensorView> || std::is_same_v<M, std::span<const std::int32_t>> ||
                  std::is_same_v<M, std::uint64_t>)
      out.append(nb::make_tuple(f.name, kind_of<M>()));
    else
      out.append(nb::make_tuple(f.name, kind_of<M>(), describe_fields<M>()));
  });
  return nb::tuple(out);
}

// --------------------------------------------------------------- plans ----

// Runs a C++ call (arguments already converted under the GIL) without the GIL,
// so other Python threads and the caller's other streams proceed; raises on
// failure.
template <class Fn>
void call_unlocked(Fn&& fn) {
  Status s;
  {
    nb::gil_scoped_release unlocked;
    s = fn();
  }
  check(s);
}

std::string plan_repr(const KernelInfo& k, Device device);

template <class Op>
void bind_plan(nb::module_& m) {
  using P = Plan<Op>;
  using Desc = typename Op::Desc;
  const std::string name = std::string(Op::kName) + "Plan";
  const auto start = [](const P& plan) {
    Holder hold;
    hold.where = Op::kName;
    hold.byte_dtype = fp8_pool_dtype(plan.desc());
    hold.written = Written<Op>::list;
    return hold;
  };
  nb::class_<P> cls(m, name.c_str());
  cls.def_static(
         "create", [](const Desc& d, nb::handle device) { return unwrap(P::create(d, to_device(device))); },
         "desc"_a, "device"_a = "cpu")
      .def_static(
          "supports", [](const Desc& d, nb::handle device) { return P::supports(d, to_device(device)).is_ok(); },
          "desc"_a, "device"_a = "cpu")
      .def("workspace_bytes", &P::workspace_bytes)
      .def_prop_ro("desc", &P::desc)
      .def_prop_ro("device", [](const P& p) { return p.device().to_string(); })
      .def_prop_ro("kernel", &P::kernel)
      .def_prop_ro("key", [](const P& p) { return p.kernel().key(); })
      .def_prop_ro("precision", [](const P& p) { return p.kernel().precision; })
      .def("__repr__", [](const P& p) { return plan_repr(p.kernel(), p.device()); })
      .def(
          "run",
          [start](const P& plan, nb::handle workspace, nb::handle stream, nb::kwargs tensors) {
            Holder hold = start(plan);
            typename Op::Args args{};
            fill(args, tensors, hold, "");
            const Workspace ws = to_workspace(workspace, plan.device(), hold);
            const Stream st = to_stream(stream, plan.device());
            call_unlocked([&] { return plan.run(args, ws, st); });
          },
          nb::kw_only(), "workspace"_a = nb::none(), "stream"_a = nb::none(), "tensors"_a);
  cls.attr("_desc_type") = nb::type<Desc>();
  cls.attr("_run_fields") = describe_fields<typename Op::Args>();
  if constexpr (Op::kHasPrepare) {
    cls.attr("_prepare_fields") = describe_fields<typename Op::PrepareArgs>();
    cls.def(
        "prepare",
        [start](P& plan, nb::handle lengths, nb::handle workspace, nb::handle stream, nb::kwargs fields) {
          Holder hold = start(plan);
          typename Op::PrepareArgs host{};
          if (!lengths.is_none()) fill(host, lengths, hold, "");
          fill(host, fields, hold, "");
          const Workspace ws = to_workspace(workspace, plan.device(), hold);
          const Stream st = to_stream(stream, plan.device());
          call_unlocked([&] { return plan.prepare(host, ws, st); });
        },
        "lengths"_a = nb::none(), nb::kw_only(), "workspace"_a = nb::none(), "stream"_a = nb::none(),
        "fields"_a);
  }
}

}  // namespace kvserve::py
