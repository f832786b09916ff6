// Column shorthands shared by the models and the migrations.
import { DataTypes } from 'sequelize';

export const id = () => ({ type: DataTypes.STRING(36), primaryKey: true, allowNull: false });
export const ref = (allowNull = true) => ({ type: DataTypes.STRING(36), allowNull });
export const str = (length = 255, allowNull = true) => ({ type: DataTypes.STRING(length), allowNull });
export const text = () => ({ type: DataTypes.TEXT, allowNull: true });
export const int = (allowNull = true) => ({ type: DataTypes.INTEGER, allowNull });
export const bigint = () => ({ type: DataTypes.BIGINT, allowNull: false, defaultValue: 0 });
export const bool = (allowNull = false) => ({ type: DataTypes.BOOLEAN, allowNull });
export const float = () => ({ type: DataTypes.FLOAT, allowNull: true });
export const date = (allowNull = true) => ({ type: DataTypes.DATE, allowNull });
export const status = () => ({ type: DataTypes.STRING(16), allowNull: false });
export const timestamps = () => ({ created_at: date(false), updated_at: date(true) });
export const statuses = () => ({ provisioning_status: status(), operating_status: status() });
